// Note.
// Deprecated: not at a paragraph start.
module example.com/notdeprecated1
