modulex
