# The folder the top-level component: names (it must exist); nothing runs from it here.
