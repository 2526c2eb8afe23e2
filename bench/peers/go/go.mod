module weft.local/peers

go 1.19
