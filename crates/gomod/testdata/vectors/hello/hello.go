package hello

// Hello says hello.
func Hello() string { return "hello" }
