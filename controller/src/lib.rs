//! controller: see ../shared/DESIGN.md. Built by its own issue.
