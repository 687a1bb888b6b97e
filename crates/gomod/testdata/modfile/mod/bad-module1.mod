module
module a b
