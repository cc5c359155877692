# txkv.3: its ERRORS list is generated from the error table in src/txkv.h.
man_MANS = man/txkv.3
EXTRA_DIST += man/txkv.3.in man/gen-errors.awk
CLEANFILES += man/txkv.3
man/txkv.3: $(srcdir)/man/txkv.3.in $(srcdir)/src/txkv.h $(srcdir)/man/gen-errors.awk
	@mkdir -p man
	$(AM_V_GEN)$(AWK) -v version='$(PACKAGE_VERSION)' -f $(srcdir)/man/gen-errors.awk \
	  $(srcdir)/src/txkv.h $(srcdir)/man/txkv.3.in > $@.tmp && mv $@.tmp $@
