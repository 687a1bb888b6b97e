module example.com/laxgo4

go 1.0beta
