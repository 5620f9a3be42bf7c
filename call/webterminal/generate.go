package webterminal

//go:generate sh gen.sh
