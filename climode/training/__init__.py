"""climode.training"""
