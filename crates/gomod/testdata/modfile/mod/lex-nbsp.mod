module x
