module example.com/laxgo3

go v1.22
