module example.com/deprecated2 // Deprecated: in the suffix.

go 1.17
