//
//
//
// Deprecated: after blank comment lines
module example.com/deprecated5
