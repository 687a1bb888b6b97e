module example.com/laxgo2

go 1.22
go 1.23
