"""climode.data.synthetic"""
