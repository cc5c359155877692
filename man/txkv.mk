# txkv.3
