module example.com/multi/v2

go 1.22

require example.com/hello v1.0.0
