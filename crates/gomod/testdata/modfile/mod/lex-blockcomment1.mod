module x
/* c */
