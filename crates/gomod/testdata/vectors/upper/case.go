package Case

const Name = "Case"
