-- nothing to do yet
/* still nothing */
