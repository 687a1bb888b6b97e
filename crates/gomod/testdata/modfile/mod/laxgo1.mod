module example.com/laxgo1

go v1.22.x
