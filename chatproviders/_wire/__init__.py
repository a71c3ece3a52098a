"""The wire: one HTTP try from the socket up.

``transport`` sends and reads bytes and translates requests' and urllib3's
errors into ours; ``deadline`` bounds a whole try by one monotonic deadline;
``exchange`` is one try of a prepared request; ``retry`` the loop around it.
"""
