"""climode.basins"""
