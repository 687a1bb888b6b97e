// A dependency's go.mod using things only strict parsing rejects.
module example.com/lax

go 1.21-custom

toolchain not-a-toolchain
godebug "quoted"=1
futuredirective some arguments
futureblock (
	anything goes here
)
require foo (
	example.com/inside v1.0.0
)
exclude example.com/x master
replace example.com/a => example.com/b
tool a b
retract v1.0.0 trailing tokens
retract [v1.0.0, ] // skipped in lax mode
retract (v2.0.0)
require example.com/kept v1.0.0 // indirect
ignore ./kept
