module example.com/bad
module example.com/again
go 1.21
go 1.22
toolchain go1.21.0
toolchain go1.22.0
unknown directive here
(
)
require example.com/a
require example.com/a v1.0.0 extra
require ( example.com/a v1.0.0 )
require example.com/a master
require example.com/a latest
require example.com/a 1.2.3
require example.com/a v2.0.0
require example.com/a/v2 v1.0.0
require example.com/a/v1 v1.0.0
require gopkg.in/yaml v1.0.0
require gopkg.in/yaml.v2 v3.0.0
require example.com/a 'v1.0.0'
require example.com/a `v1.0.0`
require `example.com/a` v1.0.0
require "example.com/a\q" v1.0.0
require example.com/a "v1.0.0\q"
require example.com/a"b v1.0.0
require example.com/a "v1.0.0\u00a0\t\x01\U0001F600"
require (
	example.com/a v1.0.0 )
	example.com/b
)
exclude example.com/a
exclude example.com/a branch
exclude example.com/a/v3 v2.0.0
