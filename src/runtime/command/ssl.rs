//! `show ssl cert`: placeholder, filled in below.
