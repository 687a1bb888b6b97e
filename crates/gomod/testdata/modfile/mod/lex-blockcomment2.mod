module x/*y*/
