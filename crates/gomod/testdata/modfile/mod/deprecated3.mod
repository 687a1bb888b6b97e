// Some text.
//
// Deprecated:   in paragraph two
// continues here.
//
// Trailing paragraph.
//
// Deprecated: a second one is ignored.
module example.com/deprecated3
