// Deprecated: a suffix-less paragraph
// that continues.
module example.com/deprecated1

go 1.17
