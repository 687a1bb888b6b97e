module "example.com/\u0071uoted\x2fpath"

go 1.21rc1

require (
)
exclude ()
retract ( )
replace () // empty blocks

require	example.com/tabs	v1.0.0	  // indirect	
require "example.com/esc\"aped" v1.0.0
require example.com/unicode/日本 v1.0.0 // comment with ünïcödé
require example.com/x v1.0.0 // first // second
// A comment inside nothing.
   // An indented whole-line comment.
require (// comment after paren
	example.com/y v1.0.0
	// comment before paren
) // comment after block
require example.com/z/v2 v2.0.0-20200101000000-abcdefabcdef // pseudo
require example.com/w v0.0.0-00010101000000-000000000000 // indirect
