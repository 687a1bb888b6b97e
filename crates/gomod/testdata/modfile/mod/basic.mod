// A header comment followed by a blank line belongs to no directive.

// Deprecated: use example.com/other instead.
module example.com/basic

go 1.21.0

toolchain go1.22.3

require example.com/single v1.2.3

require (
	example.com/a v1.0.0 // indirect
	example.com/b v1.1.0 //indirect
	example.com/c v1.2.0 // indirect; needed by example.com/a
	example.com/d v1.3.0 // indirect: not the marker
	example.com/e v1.4.0 // Indirect
	example.com/e2 v1.4.1 // indirect;
	example.com/e3 v1.4.2 // indirect ;
	example.com/e4 v1.4.3 //	indirect	
	example.com/f v0.0.0-20200101000000-abcdefabcdef // indirect
	example.com/g/v2 v2.0.1
	example.com/h v2.0.0+incompatible // indirect
	"example.com/quoted" "v1.5.0"
	gopkg.in/yaml.v3 v3.0.1
	gopkg.in/check.v1 v0.0.0-20161208181325-20d25e280405
	gopkg.in/src-d/go-git.v4 v4.13.1
	example.com/short v1.2 // canonicalized to v1.2.0
	example.com/meta v1.2.3+build.5
	example.com/pre v1.0.0-rc.1 // a comment
	example.com/tight v1.0.0// indirect
	example.com/a v1.0.1 // duplicates are kept
)

require example.com/last v0.1.0 // indirect
