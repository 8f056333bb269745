# CRAN packages (from Debian's r-cran-* here)
install.packages("jsonlite")
library(jsonlite)
