// Real-world go.mod of golang.org/x/text@v0.24.0, copied from the module cache.

module golang.org/x/text

go 1.23.0

require golang.org/x/tools v0.21.1-0.20240508182429-e35e4ccd0d2d // tagx:ignore

require golang.org/x/mod v0.17.0 // indirect; tagx:ignore

require golang.org/x/sync v0.13.0 // indirect
