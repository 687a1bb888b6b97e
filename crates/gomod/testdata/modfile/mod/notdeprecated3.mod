// deprecated: wrong case
module example.com/notdeprecated3
