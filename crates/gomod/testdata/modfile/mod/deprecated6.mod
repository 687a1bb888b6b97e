// Deprecated:
module example.com/deprecated6 // the message starts on the next line
