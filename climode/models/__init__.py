"""climode.models"""
