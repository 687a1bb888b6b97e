package incompat
