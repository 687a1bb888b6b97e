module x

require (
	x.com/y v1.0.0
