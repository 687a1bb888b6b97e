module 'x'
