package multi

// Ünïcode file names are allowed in modules.
