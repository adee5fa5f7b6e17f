"""Issue 7 evaluation: the paper's section 4 measured on this sensor.

``common`` holds the stamp, table and plot helpers every part shares;
``evasion_http`` is Figure 9 (detection by HTTP evasion technique, live).
"""
