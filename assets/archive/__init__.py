"""The archive stage: EnMAP products -> product records -> the tile catalog."""
