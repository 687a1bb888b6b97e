module example.com/directives

go 1.24

godebug default=go1.21
godebug (
	panicnil=1
	asynctimerchan=0
	x509sha1=
)

exclude example.com/x v1.0.0
exclude (
	example.com/x v1.1.0
	example.com/x v1.0.0
	example.com/y/v3 v3.0.0-pre
	"example.com/z" v0.1
)

replace example.com/old => example.com/new v1.0.0
replace example.com/old v1.2.0 => example.com/new v1.2.1
replace example.com/dir => ./local
replace (
	example.com/up v1.0.0 => ../up
	example.com/abs => /abs/path
	example.com/win => C:/src/win
	example.com/dot => .
	example.com/dotdot => ..
	example.com/old => example.com/newer v1.3.0
	"example.com/q" => "example.com/r" "v0.1"
	example.com/major/v2 v2.1.0 => example.com/fork/v2 v2.1.1
	example.com/same => example.com/same v1.0.0
)

retract v1.0.0
retract [v1.1.0, v1.2.0] // Range rationale.
retract (
	// Comment for the first.
	// Second line.
	v0.9.0
	v0.8.0 // Own suffix.
	[v0.1.0, v0.5.0]

	v0.0.1
)

// Shared rationale
// for the whole block.
retract (
	v2.0.0
	v2.0.1 // Own.

	v2.0.2
)

retract "v3.0.0"
retract not-a-version // go keeps retract versions as written

tool example.com/tools/cmd/gen
tool (
	golang.org/x/tools/cmd/stringer
	example.com/tools/cmd/gen
)

ignore ./node_modules
ignore (
	static
	"./with space"
)

retract v0.0.1
retract ( // On the paren: no directive's rationale.
	v0.0.2
)
retract (
	v0.0.3
	// Before the paren: no directive's rationale either.
) // After the block: nor this.
require (
	example.com/after-block v1.0.0
) // indirect
