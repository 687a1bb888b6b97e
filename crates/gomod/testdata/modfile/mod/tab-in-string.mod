module "a	b"
