module example.com/utf8 // ÿþ latin-1: café
// Ã
require x.com/y v1.0.0 // indirect ÿ
