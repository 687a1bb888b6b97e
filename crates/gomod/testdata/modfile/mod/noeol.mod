module example.com/noeol
go 1.20
require example.com/a v1.0.0 // indirect