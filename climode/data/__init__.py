"""climode.data"""
