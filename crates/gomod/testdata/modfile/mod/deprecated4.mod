// Deprecated: on the block.
module (
	example.com/deprecated4
)
