"""climode.metrics"""
