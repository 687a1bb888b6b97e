// Deprecated:
module example.com/notdeprecated2
