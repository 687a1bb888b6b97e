module example.com/bad2
go
go 1.21 extra
go 1.21.0.0
go v1.21
toolchain
toolchain 1.21
toolchain go2
replace example.com/a
replace example.com/a =>
replace example.com/a v1.0.0 => example.com/b v1.0.0 extra
replace example.com/a -> example.com/b v1.0.0
replace example.com/a => example.com/b
replace example.com/a => example.com/b@v1.0.0
replace example.com/a => ./dir v1.0.0
replace example.com/a => ..\dir
replace example.com/a => C:\dir
replace example.com/a master => example.com/b v1.0.0
replace example.com/a => example.com/b master
replace example.com/a/v1 => example.com/b v1.0.0
replace example.com/a/v2 v1.0.0 => example.com/b v1.0.0
replace "example.com/a\q" => ./x
replace example.com/a => "./x\q"
retract
retract [
retract [v1.0.0
retract [v1.0.0,
retract [v1.0.0, v2.0.0
retract [v1.0.0 v2.0.0]
retract (v1.0.0)
retract v1.0.0 extra
retract 'v1'
retract [v1, "v2\q"]
godebug
godebug a=b c=d
godebug noequals
godebug "a=b"
godebug a=b,c=d
godebug a='b'
tool
tool a b
tool 'x'
ignore
ignore a b
ignore "x\q"
go (
	1.21
)
toolchain (
	go1.21.0
)
require example.com/x (
	example.com/y v1.0.0
)
