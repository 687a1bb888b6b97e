package multi
