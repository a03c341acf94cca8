"""What people take away from a store: status, print files, repeat previews and the HTML report.
"""
